//+------------------------------------------------------------------+
//| MT5Bridge/PragueClock.mqh                                        |
//| FTMO's day starts at midnight in Prague. The terminal has no     |
//| time-zone database, so the EU rule is written out: Central       |
//| European Summer Time (UTC+2) from the last Sunday of March to    |
//| the last Sunday of October, both at 01:00 UTC; UTC+1 otherwise.  |
//| Every function takes UTC (TimeGMT()) and returns UTC.            |
//+------------------------------------------------------------------+
#ifndef MT5B_PRAGUE_CLOCK_MQH
#define MT5B_PRAGUE_CLOCK_MQH

#define SECONDS_PER_DAY     86400
#define PRAGUE_WINTER_S     3600
#define PRAGUE_SUMMER_S     7200

//--- 01:00 UTC on the last Sunday of a month: when EU summer time starts (March) or ends (October)
datetime LastSundayOneUtc(const int year,const int month)
  {
   MqlDateTime first_of_next;
   first_of_next.year=(month==12) ? year+1 : year;
   first_of_next.mon=(month==12) ? 1 : month+1;
   first_of_next.day=1;
   first_of_next.hour=0;
   first_of_next.min=0;
   first_of_next.sec=0;
   first_of_next.day_of_week=0;
   first_of_next.day_of_year=0;
   datetime last_day=StructToTime(first_of_next)-SECONDS_PER_DAY;
   MqlDateTime parts;
   TimeToStruct(last_day,parts);
   // day_of_week: 0 is Sunday, so step back that many days
   return(last_day-parts.day_of_week*SECONDS_PER_DAY+3600);
  }

//--- Prague's offset from UTC at a UTC moment, in seconds
int PragueOffsetSeconds(const datetime utc)
  {
   MqlDateTime parts;
   TimeToStruct(utc,parts);
   datetime summer_starts=LastSundayOneUtc(parts.year,3);
   datetime summer_ends=LastSundayOneUtc(parts.year,10);
   if(utc>=summer_starts && utc<summer_ends)
      return(PRAGUE_SUMMER_S);
   return(PRAGUE_WINTER_S);
  }

//+------------------------------------------------------------------+
//| The UTC moment of the latest midnight in Prague at or before     |
//| utc. The clocks change at 02:00/03:00 local time, never at       |
//| midnight, so the offset in force two hours before a midnight in  |
//| UTC+2 tells which offset that midnight had.                      |
//+------------------------------------------------------------------+
datetime PragueMidnightUtc(const datetime utc)
  {
   long local=(long)utc+PragueOffsetSeconds(utc);
   long local_midnight=local-(local%SECONDS_PER_DAY);
   if(PragueOffsetSeconds((datetime)(local_midnight-PRAGUE_SUMMER_S))==PRAGUE_SUMMER_S)
      return((datetime)(local_midnight-PRAGUE_SUMMER_S));
   return((datetime)(local_midnight-PRAGUE_WINTER_S));
  }

//--- the Prague day of a UTC moment as a number (days since 1970 at Prague midnight); equal numbers, same day
long PragueDayKey(const datetime utc)
  {
   return(((long)PragueMidnightUtc(utc)+PRAGUE_SUMMER_S)/SECONDS_PER_DAY);
  }

//+------------------------------------------------------------------+
//| Trade-server time minus UTC from the two clocks, which are read  |
//| a moment apart and of which the PC's may be somewhat off: the    |
//| nearest whole hour (trade servers run on whole-hour offsets).    |
//| false when the difference is not within CLOCK_TOLERANCE_S of a   |
//| whole hour, or the hour is beyond +-14: the PC clock is wrong,   |
//| and the EA says so rather than trust a Prague day built on it.   |
//+------------------------------------------------------------------+
#define CLOCK_TOLERANCE_S   120
#define MAX_OFFSET_S        50400

bool WholeHourOffset(const datetime server_time,const datetime utc,long &offset)
  {
   long difference=(long)server_time-(long)utc;
   offset=(long)MathRound(difference/3600.0)*3600;
   long off_by=difference-offset;
   if(off_by<0)
      off_by=-off_by;
   if(offset>MAX_OFFSET_S || offset<-MAX_OFFSET_S)
     {
      offset=0;
      return(false);
     }
   return(off_by<=CLOCK_TOLERANCE_S);
  }

//+------------------------------------------------------------------+
//| US daylight saving time on a day: from the second Sunday of      |
//| March to the first Sunday of November. Many brokers' servers     |
//| (FTMO's among them) run UTC+2, UTC+3 while it is in force. Taken |
//| by the server's date, so it is off by some hours on the two      |
//| switch days only.                                                |
//+------------------------------------------------------------------+
bool UsSummerTime(const datetime day)
  {
   MqlDateTime parts;
   TimeToStruct(day,parts);
   if(parts.mon<3 || parts.mon>11)
      return(false);
   if(parts.mon>3 && parts.mon<11)
      return(true);
   // the weekday of the 1st of the month (0 = Sunday), then the date of its first Sunday
   int first_weekday=(parts.day_of_week-(parts.day-1)%7+7)%7;
   int first_sunday=1+(7-first_weekday)%7;
   if(parts.mon==3)
      return(parts.day>=first_sunday+7);
   return(parts.day<first_sunday);
  }

//--- the server's offset in the Strategy Tester, where TimeGMT cannot be trusted: the broker's known rule
long TesterServerOffset(const datetime server_time,const int base_hours,const bool us_summer_time)
  {
   long offset=(long)base_hours*3600;
   if(us_summer_time && UsSummerTime(server_time))
      offset+=3600;
   return(offset);
  }

#endif // MT5B_PRAGUE_CLOCK_MQH
