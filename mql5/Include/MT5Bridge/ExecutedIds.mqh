//+------------------------------------------------------------------+
//| MT5Bridge/ExecutedIds.mqh                                        |
//| The command ids this chart has acted on, kept in a text file in  |
//| the terminal's own MQL5\Files\MT5Bridge folder (not the common   |
//| folder: the file belongs with the terminal that holds the        |
//| account). An id is written and flushed BEFORE its order is sent, |
//| so a command received twice - even across an EA or terminal      |
//| restart - is never traded twice: after a crash between the two   |
//| the command is simply not executed, and the bridge settles it    |
//| from the positions. One line per id: "<command_id> <unix time>". |
//| Ids older than the retention are forgotten, so a journal started |
//| afresh days later does not collide with old ids.                 |
//+------------------------------------------------------------------+
#ifndef MT5B_EXECUTED_IDS_MQH
#define MT5B_EXECUTED_IDS_MQH

#define EXECUTED_IDS_FOLDER     "MT5Bridge"
#define EXECUTED_IDS_KEEP_S     (3*86400)
#define EXECUTED_IDS_MAX        20000

class CExecutedIds
  {
private:
   string            m_file;
   long              m_ids[];
   long              m_times[];
   int               m_count;
   bool              m_loaded;

   void              Remember(const long command_id,const long when);
   bool              Rewrite(void);

public:
                     CExecutedIds(void);
   bool              Load(const string file_name,const datetime now,string &problem);
   bool              IsLoaded(void) const { return(m_loaded); }
   bool              Contains(const long command_id) const;
   bool              Add(const long command_id,const datetime now,string &problem);
   int               Count(void) const { return(m_count); }
   string            FileName(void) const { return(m_file); }
  };

CExecutedIds::CExecutedIds(void)
  {
   m_file="";
   m_count=0;
   m_loaded=false;
  }

//--- a file name from login, symbol and magic; symbol characters a file name cannot hold become '_'
string ExecutedIdsFileName(const long login,const string symbol,const long magic)
  {
   string safe=symbol;
   int n=StringLen(safe);
   for(int i=0; i<n; i++)
     {
      ushort c=StringGetCharacter(safe,i);
      bool plain=(c>='A' && c<='Z') || (c>='a' && c<='z') || (c>='0' && c<='9') || c=='.' || c=='-' || c=='_';
      if(!plain)
         StringSetCharacter(safe,i,'_');
     }
   string folder=EXECUTED_IDS_FOLDER;
   return(folder+"\\executed_"+IntegerToString(login)+"_"+safe+"_"+IntegerToString(magic)+".txt");
  }

void CExecutedIds::Remember(const long command_id,const long when)
  {
   ArrayResize(m_ids,m_count+1,256);
   ArrayResize(m_times,m_count+1,256);
   m_ids[m_count]=command_id;
   m_times[m_count]=when;
   m_count++;
  }

bool CExecutedIds::Contains(const long command_id) const
  {
   for(int i=m_count-1; i>=0; i--)
      if(m_ids[i]==command_id)
         return(true);
   return(false);
  }

//+------------------------------------------------------------------+
//| Reads the file (a missing file is an empty history), forgets ids |
//| past the retention and writes the rest back.                     |
//+------------------------------------------------------------------+
bool CExecutedIds::Load(const string file_name,const datetime now,string &problem)
  {
   m_file=file_name;
   m_count=0;
   m_loaded=false;
   FolderCreate(EXECUTED_IDS_FOLDER);
   int read_lines=0;
   if(FileIsExist(m_file))
     {
      int handle=FileOpen(m_file,FILE_READ|FILE_TXT|FILE_ANSI|FILE_SHARE_READ);
      if(handle==INVALID_HANDLE)
        {
         problem="cannot read "+m_file+": error "+IntegerToString(GetLastError());
         return(false);
        }
      while(!FileIsEnding(handle))
        {
         string line=FileReadString(handle);
         read_lines++;
         int space=StringFind(line," ");
         if(space<=0)
            continue;
         long id=StringToInteger(StringSubstr(line,0,space));
         long when=StringToInteger(StringSubstr(line,space+1));
         if(id>0 && when>(long)now-EXECUTED_IDS_KEEP_S)
            Remember(id,when);
        }
      FileClose(handle);
     }
   if(m_count>EXECUTED_IDS_MAX)
     {
      // keep the newest ones
      int drop=m_count-EXECUTED_IDS_MAX;
      for(int i=0; i<EXECUTED_IDS_MAX; i++)
        {
         m_ids[i]=m_ids[i+drop];
         m_times[i]=m_times[i+drop];
        }
      m_count=EXECUTED_IDS_MAX;
     }
   if(read_lines>m_count && !Rewrite())
     {
      problem="cannot rewrite "+m_file+": error "+IntegerToString(GetLastError());
      return(false);
     }
   m_loaded=true;
   return(true);
  }

bool CExecutedIds::Rewrite(void)
  {
   int handle=FileOpen(m_file,FILE_WRITE|FILE_TXT|FILE_ANSI);
   if(handle==INVALID_HANDLE)
      return(false);
   for(int i=0; i<m_count; i++)
      FileWriteString(handle,IntegerToString(m_ids[i])+" "+IntegerToString(m_times[i])+"\r\n");
   FileClose(handle);
   return(true);
  }

//+------------------------------------------------------------------+
//| Records an id before its order is sent: appended and closed (so  |
//| flushed to disk) at once. false when the file cannot be written. |
//+------------------------------------------------------------------+
bool CExecutedIds::Add(const long command_id,const datetime now,string &problem)
  {
   Remember(command_id,(long)now);
   if(!m_loaded)
     {
      problem="the executed-ids file is not open";
      return(false);
     }
   int handle=FileOpen(m_file,FILE_READ|FILE_WRITE|FILE_TXT|FILE_ANSI|FILE_SHARE_READ);
   if(handle==INVALID_HANDLE)
     {
      problem="cannot write "+m_file+": error "+IntegerToString(GetLastError());
      return(false);
     }
   FileSeek(handle,0,SEEK_END);
   uint written=FileWriteString(handle,IntegerToString(command_id)+" "+IntegerToString((long)now)+"\r\n");
   FileClose(handle);
   if(written==0)
     {
      problem="cannot write "+m_file;
      return(false);
     }
   return(true);
  }

#endif // MT5B_EXECUTED_IDS_MQH
