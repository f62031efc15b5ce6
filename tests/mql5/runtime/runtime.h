// Bodies for the MQL5 built-ins the EA's pure includes use (Json, Messages, PragueClock, TradeMath), so they
// can run here. Forced in with -include, on top of the same declarations the compile check uses
// (stubs/mql5.h): a function the includes call but this file does not define fails to link.
//
// Behaviour follows the MQL5 reference: strings are UTF-16; DoubleToString is fixed-point with the given
// decimals; StringToCharArray with count -1 converts the whole string and appends a terminating zero;
// MathRound rounds half away from zero; MqlDateTime.day_of_week counts from Sunday = 0 and day_of_year from
// January 1st = 0; an array index out of range stops the program (here: an exception).
#ifndef MT5B_TEST_RUNTIME_H
#define MT5B_TEST_RUNTIME_H

#define MT5B_RUNTIME
#include "../stubs/mql5.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

// ---- string ----------------------------------------------------------------------------------------------
inline string::string() {}
inline string::string(const char *text)
  {
   // the EA's literals are ASCII; the test feeds other text through CharArrayToString
   for(const char *p=text; *p; ++p)
      chars.push_back((char16_t)(unsigned char)*p);
  }
inline string::string(const string &other) : chars(other.chars) {}
inline string &string::operator=(const string &other) { chars=other.chars; return *this; }
inline string &string::operator+=(const string &other) { chars+=other.chars; return *this; }
inline string operator+(const string &a,const string &b) { string s(a); s+=b; return s; }
inline bool operator==(const string &a,const string &b) { return a.chars==b.chars; }
inline bool operator!=(const string &a,const string &b) { return a.chars!=b.chars; }
inline bool operator<(const string &a,const string &b) { return a.chars<b.chars; }
inline bool operator>(const string &a,const string &b) { return a.chars>b.chars; }

inline std::string Ascii(const string &s)
  {
   std::string out;
   for(char16_t c : s.chars)
      out.push_back(c<128 ? (char)c : '?');
   return out;
  }

inline string FromAscii(const std::string &text) { return string(text.c_str()); }

// ---- arrays ----------------------------------------------------------------------------------------------
template<typename T> MqlArray<T>::MqlArray() {}
template<typename T> MqlArray<T>::MqlArray(std::initializer_list<T> list) : items(list) {}
template<typename T> T &MqlArray<T>::operator[](long index) { return items.at((size_t)index); }
template<typename T> const T &MqlArray<T>::operator[](long index) const { return items.at((size_t)index); }
template<typename T> int ArrayResize(MqlArray<T> &array,int new_size,int reserve_size)
  {
   (void)reserve_size;
   array.items.resize((size_t)new_size);
   return new_size;
  }

// ---- common, math --------------------------------------------------------------------------------------
template<typename... Args> void Print(const Args &... args) { (void)sizeof...(args); }
inline bool MathIsValidNumber(double number) { return std::isfinite(number); }
inline double MathAbs(double value) { return std::fabs(value); }
inline double MathFloor(double val) { return std::floor(val); }
inline double MathCeil(double val) { return std::ceil(val); }
inline double MathRound(double value) { return std::round(value); }
inline double NormalizeDouble(double value,int digits)
  {
   double scale=std::pow(10.0,digits);
   return std::round(value*scale)/scale;
  }

// ---- conversions and strings ---------------------------------------------------------------------------
inline string IntegerToString(long number,int str_len,ushort fill_symbol)
  {
   std::string text=std::to_string(number);
   while((int)text.size()<str_len)
      text.insert(text.begin(),(char)fill_symbol);
   return FromAscii(text);
  }
inline string DoubleToString(double value,int digits)
  {
   char buffer[512];
   std::snprintf(buffer,sizeof(buffer),"%.*f",digits,value);
   return FromAscii(buffer);
  }
inline double StringToDouble(string value) { return std::strtod(Ascii(value).c_str(),nullptr); }
inline long StringToInteger(string value) { return std::strtol(Ascii(value).c_str(),nullptr,10); }
inline string ShortToString(ushort symbol_code) { string s; s.chars.push_back((char16_t)symbol_code); return s; }
inline int StringLen(string string_value) { return (int)string_value.chars.size(); }
inline string StringSubstr(string string_value,int start_pos,int length)
  {
   string s;
   int n=(int)string_value.chars.size();
   if(start_pos<0 || start_pos>=n)
      return s;
   if(length<0 || start_pos+length>n)
      length=n-start_pos;
   s.chars=string_value.chars.substr((size_t)start_pos,(size_t)length);
   return s;
  }
inline int StringFind(string string_value,string match_substring,int start_pos)
  {
   size_t at=string_value.chars.find(match_substring.chars,(size_t)start_pos);
   return at==std::u16string::npos ? -1 : (int)at;
  }
inline ushort StringGetCharacter(string string_value,int pos)
  {
   if(pos<0 || pos>=(int)string_value.chars.size())
      return 0;
   return (ushort)string_value.chars[(size_t)pos];
  }
inline bool StringSetCharacter(string &string_var,int pos,ushort character)
  {
   if(pos<0 || pos>=(int)string_var.chars.size())
      return false;
   string_var.chars[(size_t)pos]=(char16_t)character;
   return true;
  }
inline int StringCompare(const string &string1,const string &string2,bool case_sensitive)
  {
   (void)case_sensitive;
   int c=string1.chars.compare(string2.chars);
   return c<0 ? -1 : (c>0 ? 1 : 0);
  }

// UTF-16 <-> UTF-8 for CP_UTF8 (surrogate pairs joined); CP_ACP is taken as Latin-1
inline std::string Utf8(const std::u16string &text)
  {
   std::string out;
   for(size_t i=0; i<text.size(); i++)
     {
      unsigned long c=text[i];
      if(c>=0xD800 && c<0xDC00 && i+1<text.size() && text[i+1]>=0xDC00 && text[i+1]<0xE000)
        {
         c=0x10000+((c-0xD800)<<10)+(text[i+1]-0xDC00);
         i++;
        }
      if(c<0x80)
         out.push_back((char)c);
      else if(c<0x800)
        {
         out.push_back((char)(0xC0|(c>>6)));
         out.push_back((char)(0x80|(c&0x3F)));
        }
      else if(c<0x10000)
        {
         out.push_back((char)(0xE0|(c>>12)));
         out.push_back((char)(0x80|((c>>6)&0x3F)));
         out.push_back((char)(0x80|(c&0x3F)));
        }
      else
        {
         out.push_back((char)(0xF0|(c>>18)));
         out.push_back((char)(0x80|((c>>12)&0x3F)));
         out.push_back((char)(0x80|((c>>6)&0x3F)));
         out.push_back((char)(0x80|(c&0x3F)));
        }
     }
   return out;
  }

inline std::u16string Utf16(const std::string &bytes)
  {
   std::u16string out;
   for(size_t i=0; i<bytes.size();)
     {
      unsigned char b=(unsigned char)bytes[i];
      unsigned long c=b;
      int extra=0;
      if(b>=0xF0) { c=b&0x07; extra=3; }
      else if(b>=0xE0) { c=b&0x0F; extra=2; }
      else if(b>=0xC0) { c=b&0x1F; extra=1; }
      i++;
      for(int k=0; k<extra && i<bytes.size(); k++, i++)
         c=(c<<6)|((unsigned char)bytes[i]&0x3F);
      if(c>=0x10000)
        {
         c-=0x10000;
         out.push_back((char16_t)(0xD800+(c>>10)));
         out.push_back((char16_t)(0xDC00+(c&0x3FF)));
        }
      else
         out.push_back((char16_t)c);
     }
   return out;
  }

inline int StringToCharArray(string text_string,MqlArray<uchar> &array,int start,int count,uint codepage)
  {
   std::u16string part=text_string.chars;
   if(count>=0 && (size_t)count<part.size())
      part=part.substr(0,(size_t)count);
   std::string bytes;
   if(codepage==CP_UTF8)
      bytes=Utf8(part);
   else
      for(char16_t c : part)
         bytes.push_back(c<256 ? (char)c : '?');
   if(count<0)
      bytes.push_back('\0');
   array.items.resize((size_t)start+bytes.size());
   for(size_t i=0; i<bytes.size(); i++)
      array.items[(size_t)start+i]=(uchar)bytes[i];
   return (int)bytes.size();
  }

inline string CharArrayToString(const MqlArray<uchar> &array,int start,int count,uint codepage)
  {
   size_t end=array.items.size();
   if(count>=0 && (size_t)(start+count)<end)
      end=(size_t)(start+count);
   std::string bytes;
   for(size_t i=(size_t)start; i<end && array.items[i]!=0; i++)
      bytes.push_back((char)array.items[i]);
   string s;
   if(codepage==CP_UTF8)
      s.chars=Utf16(bytes);
   else
      for(char b : bytes)
         s.chars.push_back((char16_t)(unsigned char)b);
   return s;
  }

// ---- date and time (UTC, proleptic Gregorian) -----------------------------------------------------------
inline long DaysFromCivil(long y,unsigned m,unsigned d)
  {
   y-=m<=2;
   long era=(y>=0 ? y : y-399)/400;
   unsigned yoe=(unsigned)(y-era*400);
   unsigned doy=(153*(m+(m>2 ? -3 : 9))+2)/5+d-1;
   unsigned doe=yoe*365+yoe/4-yoe/100+doy;
   return era*146097+(long)doe-719468;
  }

inline bool TimeToStruct(datetime dt,MqlDateTime &dt_struct)
  {
   long days=dt>=0 ? dt/86400 : (dt-86399)/86400;
   long seconds=dt-days*86400;
   long z=days+719468;
   long era=(z>=0 ? z : z-146096)/146097;
   unsigned doe=(unsigned)(z-era*146097);
   unsigned yoe=(doe-doe/1460+doe/36524-doe/146096)/365;
   long y=(long)yoe+era*400;
   unsigned doy=doe-(365*yoe+yoe/4-yoe/100);
   unsigned mp=(5*doy+2)/153;
   unsigned d=doy-(153*mp+2)/5+1;
   unsigned m=mp<10 ? mp+3 : mp-9;
   y+=m<=2;
   dt_struct.year=(int)y;
   dt_struct.mon=(int)m;
   dt_struct.day=(int)d;
   dt_struct.hour=(int)(seconds/3600);
   dt_struct.min=(int)(seconds%3600/60);
   dt_struct.sec=(int)(seconds%60);
   dt_struct.day_of_week=(int)((days%7+11)%7);   // 1970-01-01 was a Thursday (4)
   dt_struct.day_of_year=(int)(days-DaysFromCivil(y,1,1));
   return true;
  }

inline datetime StructToTime(MqlDateTime &dt_struct)
  {
   return DaysFromCivil(dt_struct.year,(unsigned)dt_struct.mon,(unsigned)dt_struct.day)*86400+
          dt_struct.hour*3600+dt_struct.min*60+dt_struct.sec;
  }

#endif // MT5B_TEST_RUNTIME_H
