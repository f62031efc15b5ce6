//+------------------------------------------------------------------+
//| MT5Bridge/ExecutedIds.mqh                                        |
//| The command ids acted on for one account under one bridge        |
//| journal. Command ids are one sequence per journal, and WELCOME   |
//| names the journal (journal_id), so the file is keyed by both:    |
//| MT5Bridge\executed_<login>_<journal_id>.txt. Every chart of the  |
//| account uses the same file, so a command routed to another chart |
//| after a reconnect is still recognised, and a new journal, whose  |
//| ids start again at 1, gets a file of its own.                    |
//|                                                                  |
//| An id is claimed - checked against the file and appended to it,  |
//| while the account's lock file is held - BEFORE its order is      |
//| sent, so a command received twice, even across a restart or by   |
//| two charts, is never traded twice: after a crash between the two |
//| the command is simply not executed, and the bridge settles it.   |
//| One line per id: "<command_id> <unix time>". Ids older than the  |
//| retention are dropped when a file is loaded; the file is then    |
//| rewritten atomically: a temporary file, then FileMove over it    |
//| with FILE_REWRITE, so a crash leaves the old file or the new     |
//| one, never half of one.                                          |
//+------------------------------------------------------------------+
#ifndef MT5B_EXECUTED_IDS_MQH
#define MT5B_EXECUTED_IDS_MQH

#define EXECUTED_IDS_FOLDER     "MT5Bridge"
#define EXECUTED_IDS_KEEP_S     (3*86400)
#define EXECUTED_IDS_MAX        20000
//--- another chart of the account may hold the lock for a moment: try again this often, this far apart
#define EXECUTED_IDS_LOCK_TRIES 40
#define EXECUTED_IDS_LOCK_PAUSE_MS 5

//--- what Claim found
#define CLAIM_NEW          1    // not acted on before: recorded now, execute it
#define CLAIM_DUPLICATE    0    // acted on before, by this chart or another: never again
#define CLAIM_FAILED      (-1)  // the file cannot be read or written: the id is only remembered in memory

class CExecutedIds
  {
private:
   string            m_file;
   string            m_lock;
   int               m_common;          // FILE_COMMON, or 0 in the Strategy Tester
   long              m_ids[];
   long              m_times[];
   int               m_count;
   long              m_unsaved[];       // ids whose line could not be written: still never executed twice
   int               m_unsaved_count;
   bool              m_loaded;

   void              Remember(const long command_id,const long when);
   int               OpenWithPatience(const string name,const int flags);
   int               ReadFile(const datetime now);
   bool              Rewrite(void);

public:
                     CExecutedIds(void);
   bool              Load(const string file_name,const int common_flag,const datetime now,string &problem);
   void              Forget(void);
   bool              IsLoaded(void) const { return(m_loaded); }
   bool              Contains(const long command_id) const;
   int               Claim(const long command_id,const datetime now,string &problem);
   int               Count(void) const { return(m_count); }
   string            FileName(void) const { return(m_file); }
  };

CExecutedIds::CExecutedIds(void)
  {
   m_file="";
   m_lock="";
   m_common=0;
   m_count=0;
   m_unsaved_count=0;
   m_loaded=false;
  }

//--- the file of one account under one journal; the journal id is 32 hex digits (ParseWelcome checks it)
string ExecutedIdsFileName(const long login,const string journal_id)
  {
   string folder=EXECUTED_IDS_FOLDER;
   return(folder+"\\executed_"+IntegerToString(login)+"_"+journal_id+".txt");
  }

//--- nothing loaded: a new account or journal loads its own file
void CExecutedIds::Forget(void)
  {
   m_file="";
   m_lock="";
   m_count=0;
   m_unsaved_count=0;
   m_loaded=false;
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
   for(int i=0; i<m_unsaved_count; i++)
      if(m_unsaved[i]==command_id)
         return(true);
   return(false);
  }

//+------------------------------------------------------------------+
//| Opens a file without sharing it (no FILE_SHARE_* flag: a second  |
//| open fails while this one is held), trying again for a moment    |
//| while another chart of the account holds it.                     |
//+------------------------------------------------------------------+
int CExecutedIds::OpenWithPatience(const string name,const int flags)
  {
   for(int attempt=0; attempt<EXECUTED_IDS_LOCK_TRIES; attempt++)
     {
      ResetLastError();
      int handle=FileOpen(name,flags|m_common);
      if(handle!=INVALID_HANDLE)
         return(handle);
      Sleep(EXECUTED_IDS_LOCK_PAUSE_MS);
     }
   return(INVALID_HANDLE);
  }

//+------------------------------------------------------------------+
//| The file's ids into memory, those past the retention left out    |
//| (at most the newest EXECUTED_IDS_MAX). Returns the lines read,   |
//| -1 when the file cannot be opened. A missing file is empty.      |
//+------------------------------------------------------------------+
int CExecutedIds::ReadFile(const datetime now)
  {
   m_count=0;
   if(!FileIsExist(m_file,m_common))
      return(0);
   int handle=FileOpen(m_file,FILE_READ|FILE_TXT|FILE_ANSI|FILE_SHARE_READ|m_common);
   if(handle==INVALID_HANDLE)
      return(-1);
   int lines=0;
   while(!FileIsEnding(handle))
     {
      string line=FileReadString(handle);
      lines++;
      int space=StringFind(line," ");
      if(space<=0)
         continue;
      long id=StringToInteger(StringSubstr(line,0,space));
      long when=StringToInteger(StringSubstr(line,space+1));
      if(id>0 && when>(long)now-EXECUTED_IDS_KEEP_S)
         Remember(id,when);
     }
   FileClose(handle);
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
   return(lines);
  }

//+------------------------------------------------------------------+
//| Reads the file of this account and journal (with the lock held)  |
//| and, when ids were dropped, rewrites it atomically.              |
//+------------------------------------------------------------------+
bool CExecutedIds::Load(const string file_name,const int common_flag,const datetime now,string &problem)
  {
   Forget();
   m_file=file_name;
   m_lock=file_name+".lock";
   m_common=common_flag;
   FolderCreate(EXECUTED_IDS_FOLDER,m_common);
   int lock=OpenWithPatience(m_lock,FILE_WRITE|FILE_TXT|FILE_ANSI);
   if(lock==INVALID_HANDLE)
     {
      problem="cannot take the lock "+m_lock+": error "+IntegerToString(GetLastError());
      return(false);
     }
   int lines=ReadFile(now);
   bool ok=(lines>=0);
   if(!ok)
      problem="cannot read "+m_file+": error "+IntegerToString(GetLastError());
   else if(lines>m_count && !Rewrite())
     {
      ok=false;
      problem="cannot rewrite "+m_file+": error "+IntegerToString(GetLastError());
     }
   FileClose(lock);
   m_loaded=ok;
   return(ok);
  }

//--- the ids kept, to a temporary file moved over the old one: the old file or the new, never half of one
bool CExecutedIds::Rewrite(void)
  {
   string temporary=m_file+".tmp";
   int handle=FileOpen(temporary,FILE_WRITE|FILE_TXT|FILE_ANSI|m_common);
   if(handle==INVALID_HANDLE)
      return(false);
   uint written=0;
   for(int i=0; i<m_count; i++)
      written+=FileWriteString(handle,IntegerToString(m_ids[i])+" "+IntegerToString(m_times[i])+"\r\n");
   FileClose(handle);
   if(m_count>0 && written==0)
      return(false);
   return(FileMove(temporary,m_common,m_file,FILE_REWRITE|m_common));
  }

//+------------------------------------------------------------------+
//| Claims an id before its order is sent: with the account's lock   |
//| held, the file is read again (another chart may have acted on    |
//| it) and the id appended and closed (so flushed) at once.         |
//+------------------------------------------------------------------+
int CExecutedIds::Claim(const long command_id,const datetime now,string &problem)
  {
   if(Contains(command_id))
      return(CLAIM_DUPLICATE);
   if(!m_loaded)
     {
      problem="no executed-ids file is open";
      ArrayResize(m_unsaved,m_unsaved_count+1,16);
      m_unsaved[m_unsaved_count]=command_id;
      m_unsaved_count++;
      return(CLAIM_FAILED);
     }
   int lock=OpenWithPatience(m_lock,FILE_WRITE|FILE_TXT|FILE_ANSI);
   int result=CLAIM_FAILED;
   if(lock==INVALID_HANDLE)
      problem="cannot take the lock "+m_lock+": error "+IntegerToString(GetLastError());
   else if(ReadFile(now)<0)
      problem="cannot read "+m_file+": error "+IntegerToString(GetLastError());
   else if(Contains(command_id))
      result=CLAIM_DUPLICATE;
   else
     {
      int handle=FileOpen(m_file,FILE_READ|FILE_WRITE|FILE_TXT|FILE_ANSI|m_common);
      if(handle==INVALID_HANDLE)
         problem="cannot write "+m_file+": error "+IntegerToString(GetLastError());
      else
        {
         FileSeek(handle,0,SEEK_END);
         uint written=FileWriteString(handle,IntegerToString(command_id)+" "+IntegerToString((long)now)+"\r\n");
         FileClose(handle);
         if(written>0)
           {
            Remember(command_id,(long)now);
            result=CLAIM_NEW;
           }
         else
            problem="cannot write "+m_file;
        }
     }
   if(lock!=INVALID_HANDLE)
      FileClose(lock);
   if(result==CLAIM_FAILED)
     {
      ArrayResize(m_unsaved,m_unsaved_count+1,16);
      m_unsaved[m_unsaved_count]=command_id;
      m_unsaved_count++;
     }
   return(result);
  }

#endif // MT5B_EXECUTED_IDS_MQH
